/*
 * watch.h — `oialr watch`: follow a run in the terminal (docs/inspect-watch.md).
 */
#ifndef OIALR_WATCH_H
#define OIALR_WATCH_H

/* `oialr watch RUN.h5 [--interval S] [--lag K]`; argv[0] is the command
 * name. Returns the exit status: 0 the run ended (or was not live: drawn
 * once), 1 failure (one line on stderr), 2 usage error, 130 interrupted
 * (Ctrl-C, SIGTERM). Never exits. */
int oialr_cmd_watch(int argc, char **argv);

#endif

/*
 * plot.h — `oialr plot`: gnuplot figures from the analyzer's tables.
 */
#ifndef OIALR_PLOT_H
#define OIALR_PLOT_H

/* `oialr plot CSVDIR [-o DIR] [-f] [--run RUN.h5] [--tau T]`; argv[0] is the
 * command name. Returns the exit status; never exits. */
int oialr_cmd_plot(int argc, char **argv);

#endif

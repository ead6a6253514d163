/*
 * inspect.h — `oialr inspect`: what a trajectory file holds, in the
 * domain's terms (docs/inspect-watch.md).
 */
#ifndef OIALR_INSPECT_H
#define OIALR_INSPECT_H

/* `oialr inspect RUN.h5 [--json]`; argv[0] is the command name. Returns the
 * exit status: 0 success, 1 failure (one line on stderr), 2 usage error.
 * Never exits. */
int oialr_cmd_inspect(int argc, char **argv);

/* The writer's state as inspect and watch name it: "closed" (the file was
 * closed cleanly), "live" (a writer process holds it now), "killed" (not
 * closed, and no writer holds it: the writer died). */
struct oialr_traj_info;
const char *ana_writer_state(const struct oialr_traj_info *info);

/* After oialr_traj_open refused path with OIALR_ERR_FORMAT: if it is an
 * analysis results file (`oialr analyze -o`), the error message says so and
 * names the trajectory it was made from; otherwise it is left as it is. */
void ana_explain_not_trajectory(const char *path);

#endif

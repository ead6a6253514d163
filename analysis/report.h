/*
 * report.h — `oialr report RUN.h5 -o DIR`: one static HTML page on a run
 * (report.c, docs/report.md).
 */
#ifndef OIALR_REPORT_H
#define OIALR_REPORT_H

/* argv[0] is the command name. Returns the exit status; never exits. */
int oialr_cmd_report(int argc, char **argv);

/* OIALR_OK if path is a trajectory with at least one snapshot; else a
 * one-line message (also used by compare). */
int report_check_run(const char *path);

#endif

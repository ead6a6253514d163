/*
 * oialr.c — the command-line entry point: dispatches to the subcommands.
 */
#include "analyze.h"
#include "inspect.h"
#include "cli.h"
#include "compare.h"
#include "plot.h"
#include "report.h"
#include "oialr/base.h"
#include "watch.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"train", cmd_train, "train a model (MLP, CNN, ViT) on Fashion-MNIST, MNIST or CIFAR-10"},
    {"analyze", oialr_cmd_analyze, "per-layer basis stability, spectra and ranks of a recorded trajectory"},
    {"inspect", oialr_cmd_inspect, "what a trajectory holds: layers, snapshots, metrics, events, writer state"},
    {"watch", oialr_cmd_watch, "follow a run in the terminal: loss, accuracy and stability, redrawn live"},
    {"plot", oialr_cmd_plot, "gnuplot figures of an analysis (stability, ranks, spectra, training curves)"},
    {"report", oialr_cmd_report, "one static HTML page on a run: configuration, layers, every figure"},
    {"compare", oialr_cmd_compare, "several runs side by side: curves on shared axes and a table"},
};

static void usage(FILE *f) {
    fprintf(f,
            "usage: oialr <command> [options]\n"
            "\n"
            "oialr records how a network's weights move during training, measures the\n"
            "stability of their orthogonal bases, and replays when OIALR would switch\n"
            "each layer to low rank (analyze --policy).\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f,
            "\n"
            "  oialr <command> --help   options of a command\n"
            "  oialr --version          print the version\n"
            "\n"
            "exit status: 0 success, 1 failure (one line on stderr), 2 usage error,\n"
            "  3 training diverged (train: NaN/Inf in the loss, a gradient or a weight),\n"
            "  130 interrupted (train: Ctrl-C or SIGTERM, files closed)\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("oialr %s\n", OIALR_VERSION_STRING);
        return 0;
    }
    /* Past a file-size limit (ulimit -f) a write then fails with EFBIG and
     * the command says which file, instead of the process dying of SIGXFSZ
     * with no word. */
    signal(SIGXFSZ, SIG_IGN);
    oialr_analyze_set_progress(cli_analyze_progress);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "oialr: unknown command '%s' (try 'oialr --help')\n", argv[1]);
    return 2;
}

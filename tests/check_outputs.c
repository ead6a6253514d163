/*
 * check_outputs.c — the output-file rules (oialr/base.h, "Output files"):
 * nothing a run did not create is ever removed or replaced. A device node or
 * FIFO at the path is refused even with --force; a run that fails before its
 * file is complete leaves the old file byte for byte; a second writer never
 * touches a file another process is recording, and a writer whose file was
 * removed or replaced under it says so; a file-size limit is an error
 * message, not a death by SIGXFSZ. Through the API (oialr_output_*,
 * oialr_traj_*) and through the CLI ($OIALR_BUILD/oialr).
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "oialr.h"
#include "oialr/trajectory.h"

static char dir[256];
static char bin[1024];
static char out[65536];

static void quiet_log(int level, const char *msg, void *user) { (void)level, (void)msg, (void)user; }

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/oialr-check-outputs-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    const char *b = getenv("OIALR_BUILD");
    char rel[512];
    snprintf(rel, sizeof rel, "%s/oialr", b ? b : "build");
    ck_assert_msg(realpath(rel, bin) != NULL, "%s not built", rel);
    oialr_set_log(quiet_log, NULL, OIALR_LOG_DEBUG);
}

static void teardown(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void path_of(char *p, size_t n, const char *name) { snprintf(p, n, "%s/%s", dir, name); }

#define OK(expr)                                                                                             \
    do {                                                                                                     \
        int rc_ = (expr);                                                                                    \
        ck_assert_msg(rc_ == OIALR_OK, "%s -> %d: %s", #expr, rc_, oialr_errmsg());                          \
    } while (0)

static void put_file(const char *name, const char *content) {
    char p[512];
    path_of(p, sizeof p, name);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(content, f);
    ck_assert_int_eq(fclose(f), 0);
}

static int same_content(const char *name, const char *content) {
    char p[512], buf[4096];
    path_of(p, sizeof p, name);
    FILE *f = fopen(p, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strcmp(buf, content) == 0;
}

/* Files in the scratch dir whose name ends in ".part" (temporaries). */
static int count_parts(void) {
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        n += l > 5 && !strcmp(e->d_name + l - 5, ".part");
    }
    closedir(d);
    return n;
}

/* A character device like /dev/null (root only), else a FIFO: 1 = device. */
static int make_node(const char *name) {
    char p[512];
    path_of(p, sizeof p, name);
    if (mknod(p, S_IFCHR | 0666, makedev(1, 3)) == 0) return 1;
    ck_assert_int_eq(mkfifo(p, 0666), 0);
    return 0;
}

static int is_special(const char *name) {
    char p[512];
    struct stat st;
    path_of(p, sizeof p, name);
    return lstat(p, &st) == 0 && (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode));
}

/* A trajectory with one 3x4 layer (phase 1). */
static int traj_new(oialr_traj **t, const char *name, int force) {
    char p[512];
    path_of(p, sizeof p, name);
    oialr_traj_options o;
    oialr_traj_options_default(&o);
    o.force = force;
    int rc = oialr_traj_create(t, p, &o);
    if (rc) return rc;
    return oialr_traj_declare_layer(*t, "fc.weight", 3, 4, "dense", 0, NULL, NULL);
}

static int traj_snap(oialr_traj *t, int64_t step) {
    float w[12];
    for (int i = 0; i < 12; i++) w[i] = (float)(step + i);
    return oialr_traj_append(t, 0, step, w, 0);
}

/* Run the CLI in the scratch dir with stdout+stderr captured; the exit code,
 * or 128 + the signal that killed it. fsize > 0: under RLIMIT_FSIZE. */
static int cli(const char *args, rlim_t fsize) {
    int fd[2];
    ck_assert_int_eq(pipe(fd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fd[1], 1), dup2(fd[1], 2);
        close(fd[0]), close(fd[1]);
        if (chdir(dir) != 0) _exit(99);
        if (fsize) {
            struct rlimit rl = {fsize, fsize};
            if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(98);
        }
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "exec '%s' %s", bin, args);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(97);
    }
    close(fd[1]);
    size_t n = 0;
    ssize_t r;
    while ((r = read(fd[0], out + n, sizeof out - 1 - n)) > 0) n += (size_t)r;
    out[n] = '\0';
    close(fd[0]);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

#define TRAIN "train --dataset synthetic --model mlp:32 --batch 64 --val 500 --threads 1 --quiet "

// ----------------------------------------------------------------------------
// the rules through the API

/* oialr_output_*: a special file is refused with force too; without force
 * an existing file is refused; abort removes only the temporary. */
START_TEST(test_output_rules) {
    char p[512];
    oialr_output o;
    make_node("node");
    path_of(p, sizeof p, "node");
    ck_assert_int_eq(oialr_output_begin(&o, p, 1), OIALR_ERR_EXISTS);
    ck_assert_ptr_nonnull(strstr(oialr_errmsg(), "not a regular file"));
    ck_assert(is_special("node"));
    ck_assert_int_eq(symlink("node", (path_of(p, sizeof p, "link"), p)), 0);
    ck_assert_int_eq(oialr_output_check(p, 1), OIALR_ERR_EXISTS);
    ck_assert_ptr_nonnull(strstr(oialr_errmsg(), "symbolic link"));

    put_file("old.txt", "old content\n");
    path_of(p, sizeof p, "old.txt");
    ck_assert_int_eq(oialr_output_begin(&o, p, 0), OIALR_ERR_EXISTS);
    OK(oialr_output_begin(&o, p, 1));
    ck_assert_int_eq(count_parts(), 1);
    oialr_output_abort(&o);
    ck_assert_int_eq(count_parts(), 0);
    ck_assert(same_content("old.txt", "old content\n"));

    /* commit with force replaces; without force a file that appeared
     * meanwhile is never replaced and the new content is kept */
    OK(oialr_output_begin(&o, p, 1));
    FILE *f = fopen(o.tmp, "w");
    fputs("new\n", f);
    fclose(f);
    OK(oialr_output_commit(&o));
    ck_assert(same_content("old.txt", "new\n"));
    path_of(p, sizeof p, "late.txt");
    OK(oialr_output_begin(&o, p, 0));
    put_file("late.txt", "someone else's\n");
    ck_assert_int_eq(oialr_output_commit(&o), OIALR_ERR_EXISTS);
    ck_assert_ptr_nonnull(strstr(oialr_errmsg(), o.tmp));
    ck_assert(same_content("late.txt", "someone else's\n"));
    oialr_output_abort(&o);
    ck_assert_int_eq(count_parts(), 0);
}
END_TEST

/* A trajectory onto a device node or FIFO: refused, with force too, and the
 * node is still there (the old code unlinked it on the error path). */
START_TEST(test_traj_refuses_special_files) {
    oialr_traj *t = NULL;
    make_node("n");
    ck_assert_int_eq(traj_new(&t, "n", 1), OIALR_ERR_EXISTS);
    ck_assert_ptr_null(t);
    ck_assert(is_special("n"));
    ck_assert_int_eq(count_parts(), 0);
}
END_TEST

/* With force, the old file stays byte for byte until the new one is begun;
 * a writer discarded (or failing) before that leaves it as it was. */
START_TEST(test_traj_keeps_old_file_until_begun) {
    put_file("run.h5", "precious\n");
    oialr_traj *t = NULL;
    OK(traj_new(&t, "run.h5", 1));
    ck_assert(same_content("run.h5", "precious\n"));
    OK(oialr_traj_discard(t));
    ck_assert(same_content("run.h5", "precious\n"));
    ck_assert_int_eq(count_parts(), 0);

    /* begun: in place, readable, the old file replaced */
    OK(traj_new(&t, "run.h5", 1));
    OK(oialr_traj_begin(t));
    ck_assert(!same_content("run.h5", "precious\n"));
    ck_assert_int_eq(count_parts(), 0);
    OK(traj_snap(t, 0));
    OK(oialr_traj_close(t));
    char p[512];
    path_of(p, sizeof p, "run.h5");
    OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
    ck_assert_int_eq(oialr_traj_layer_at(t, 0)->nsnap, 1);
    OK(oialr_traj_close(t));
}
END_TEST

/* A second writer while a first records the file (another process): refused
 * before it touches anything; the first closes cleanly with its data. Then
 * the race the other way: a writer whose path was taken by a live writer
 * while it was still defining keeps its data in its temporary file. */
START_TEST(test_traj_second_writer) {
    int up[2], down[2];
    ck_assert_int_eq(pipe(up), 0);
    ck_assert_int_eq(pipe(down), 0);
    oialr_traj *late = NULL;
    OK(traj_new(&late, "run.h5", 1)); /* defined before the other begins */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(up[0]), close(down[1]);
        oialr_traj *t = NULL;
        char c = 'x';
        if (traj_new(&t, "run.h5", 1) || oialr_traj_begin(t) || traj_snap(t, 0)) _exit(3);
        if (write(up[1], &c, 1) != 1 || read(down[0], &c, 1) != 1) _exit(4);
        if (traj_snap(t, 1)) _exit(5);
        _exit(oialr_traj_close(t) ? 6 : 0);
    }
    close(up[1]), close(down[0]);
    char c = 'x';
    ck_assert_int_eq(read(up[0], &c, 1), 1);
    oialr_traj *t = NULL;
    ck_assert_int_eq(traj_new(&t, "run.h5", 1), OIALR_ERR_LOCKED);
    ck_assert_ptr_nonnull(strstr(oialr_errmsg(), "another process"));
    /* the one defined earlier may not replace the live file either */
    ck_assert_int_eq(oialr_traj_begin(late), OIALR_ERR_LOCKED);
    ck_assert_ptr_nonnull(strstr(oialr_errmsg(), ".part"));
    ck_assert_int_eq(oialr_traj_close(late), OIALR_ERR_LOCKED);
    ck_assert_int_eq(count_parts(), 1); /* its data are kept */
    ck_assert_int_eq(write(down[1], &c, 1), 1);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "first writer: status %d", st);
    char p[512];
    path_of(p, sizeof p, "run.h5");
    OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
    ck_assert_int_eq(oialr_traj_layer_at(t, 0)->nsnap, 2);
    OK(oialr_traj_close(t));
}
END_TEST

/* A writer whose file is removed or replaced under it does not report
 * success. */
START_TEST(test_traj_notices_replacement) {
    char p[512], q[512];
    path_of(p, sizeof p, "run.h5");
    path_of(q, sizeof q, "other.h5");
    for (int replace = 0; replace < 2; replace++) {
        oialr_traj *t = NULL;
        OK(traj_new(&t, "run.h5", 1));
        OK(traj_snap(t, 0));
        if (replace) {
            put_file("other.h5", "other\n");
            ck_assert_int_eq(rename(q, p), 0);
        } else {
            ck_assert_int_eq(unlink(p), 0);
        }
        ck_assert_int_eq(oialr_traj_close(t), OIALR_ERR_IO);
        ck_assert_ptr_nonnull(strstr(oialr_errmsg(), "removed or replaced"));
        if (replace) ck_assert(same_content("run.h5", "other\n"));
    }
}
END_TEST

// ----------------------------------------------------------------------------
// the rules through the CLI

/* The probe's repro: --record onto a device node with --force. */
START_TEST(test_cli_record_device_node) {
    int dev = make_node("n");
    int rc = cli(TRAIN "--epochs 1 --record n --force", 0);
    ck_assert_msg(rc == 1, "exit %d:\n%s", rc, out);
    ck_assert_msg(strstr(out, "not a regular file"), "%s", out);
    ck_assert_msg(is_special("n"), "the %s was removed", dev ? "device node" : "FIFO");
}
END_TEST

/* A run that fails after the recorder was set up, before its first
 * snapshot (here: --record-layers matches nothing), leaves the file --force
 * would have replaced (the old code truncated it, then unlinked it). */
START_TEST(test_cli_failed_record_keeps_old) {
    put_file("run.h5", "an older run\n");
    int rc = cli(TRAIN "--epochs 1 --record run.h5 --record-layers 'nomatch*' --force", 0);
    ck_assert_msg(rc == 1 && strstr(out, "no weight matrix matches"), "exit %d:\n%s", rc, out);
    ck_assert(same_content("run.h5", "an older run\n"));
    ck_assert_int_eq(count_parts(), 0);
}
END_TEST

/* Two `oialr train --record same.h5 --force`: the second is refused and the
 * first finishes with its file intact (the old code truncated and then
 * unlinked it, and the first still reported success). */
START_TEST(test_cli_two_writers) {
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int nul = open("/dev/null", O_WRONLY);
        dup2(nul, 1), dup2(nul, 2);
        if (chdir(dir) != 0) _exit(99);
        execl(bin, bin, "train", "--dataset", "synthetic", "--model", "mlp:32", "--batch", "64", "--threads", "1",
              "--quiet", "--epochs", "100000", "--record", "same.h5", "--every", "50", "--force", (char *)NULL);
        _exit(97);
    }
    char p[512];
    path_of(p, sizeof p, "same.h5");
    struct stat st;
    int waited = 0;
    while (stat(p, &st) != 0 && waited < 30000) usleep(10000), waited += 10;
    ck_assert_msg(waited < 30000, "the first writer never published %s", p);
    int rc = cli(TRAIN "--epochs 1 --record same.h5 --force", 0);
    int status;
    ck_assert_msg(waitpid(pid, &status, WNOHANG) == 0, "the first writer ended too early to test anything");
    ck_assert_msg(rc == 1, "second writer: exit %d:\n%s", rc, out);
    ck_assert_msg(strstr(out, "another process is writing"), "%s", out);
    /* the first is stopped as by Ctrl-C: it closes its file cleanly */
    ck_assert_int_eq(kill(pid, SIGINT), 0);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status), "first writer: killed by signal %d", WTERMSIG(status));
    oialr_traj *t = NULL;
    OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
    ck_assert_int_ge(oialr_traj_layer_at(t, 0)->nsnap, 1);
    OK(oialr_traj_close(t));
    ck_assert_int_eq(count_parts(), 0);
}
END_TEST

/* Under a file-size limit the recorder's write fails with EFBIG: a message
 * and exit 1, not a death by SIGXFSZ. */
START_TEST(test_cli_file_size_limit) {
    int rc = cli(TRAIN "--model mlp:256,256 --epochs 2 --record big.h5 --every 1", 1 << 20);
    ck_assert_msg(rc == 1, "exit %d (128 + %d = SIGXFSZ?):\n%s", rc, SIGXFSZ, out);
    ck_assert_msg(strstr(out, "big.h5") && strstr(out, "File too large"), "%s", out);
}
END_TEST

static Suite *outputs_suite(void) {
    Suite *s = suite_create("outputs");
    TCase *api = tcase_create("API");
    tcase_add_checked_fixture(api, setup, teardown);
    tcase_add_test(api, test_output_rules);
    tcase_add_test(api, test_traj_refuses_special_files);
    tcase_add_test(api, test_traj_keeps_old_file_until_begun);
    tcase_add_test(api, test_traj_second_writer);
    tcase_add_test(api, test_traj_notices_replacement);
    suite_add_tcase(s, api);
    TCase *cl = tcase_create("CLI");
    tcase_add_checked_fixture(cl, setup, teardown);
    tcase_add_test(cl, test_cli_record_device_node);
    tcase_add_test(cl, test_cli_failed_record_keeps_old);
    tcase_add_test(cl, test_cli_two_writers);
    tcase_add_test(cl, test_cli_file_size_limit);
    tcase_set_timeout(cl, 120);
    suite_add_tcase(s, cl);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(outputs_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The replayer of a fuzz target not built for libFuzzer (`make check`'s
 * fuzz-replay): each file named, or each file in a directory named, runs
 * through LLVMFuzzerTestOneInput() in a process of its own, started again
 * from this program (fork, then exec with --one FILE) so that it starts
 * with limits:
 *   - time: alarm(), kept across exec; Q2E_FUZZ_TIMEOUT seconds (10);
 *   - memory: Q2E_FUZZ_MAX_RSS_MB (300) of resident memory, as measured by
 *     the kernel (wait4's ru_maxrss), and enforced while running by
 *     RLIMIT_AS, or under AddressSanitizer (which reserves terabytes of
 *     address space) by its hard_rss_limit_mb.
 * An input that crashes, aborts, runs out of time, goes over the memory
 * limit or has an allocation fail (the library reports it and goes on)
 * fails the replay, with its name and what happened.
 */
#ifndef Q2E_LIBFUZZER
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* What a replay can find: under ASan (CI builds it with UBSan too,
 * .ci/run), memory errors too; built without, crashes, timeouts and the
 * oracles' aborts. */
#ifdef UNDER_ASAN
#define SANITIZERS "under ASan"
#else
#define SANITIZERS "without ASan (crashes, timeouts and the oracles' aborts)"
#endif

static const char *self;
static unsigned timeout_s = 10;
static unsigned long max_rss_mb = 300;

static unsigned long env_number(const char *name, unsigned long dflt)
{
	const char *s = getenv(name);
	char *end;
	unsigned long v;

	if (!s || !*s)
		return dflt;
	v = strtoul(s, &end, 10);
	if (*end || v == 0) {
		fprintf(stderr, "%s: %s must be a positive number, not '%s'\n",
			self, name, s);
		exit(2);
	}
	return v;
}

/* In the child: the input's bytes through the target, nothing else. */
static int run_one(const char *path)
{
	struct stat st;
	uint8_t *buf;
	FILE *fp;
	size_t n;

	fp = fopen(path, "rb");
	if (!fp || fstat(fileno(fp), &st) < 0) {
		fprintf(stderr, "%s: cannot open '%s': %s\n", self, path,
			strerror(errno));
		return 1;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf)
		return 1;
	n = fread(buf, 1, (size_t)st.st_size, fp);
	fclose(fp);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return fuzz_ran_out_of_memory() ? 3 : 0;
}

/* Limits set in the child, before exec. */
static void limit_child(void)
{
#ifdef UNDER_ASAN
	const char *old = getenv("ASAN_OPTIONS");
	char opts[512];

	snprintf(opts, sizeof(opts), "%s%shard_rss_limit_mb=%lu",
		 old ? old : "", old && *old ? ":" : "", max_rss_mb);
	setenv("ASAN_OPTIONS", opts, 1);
#else
	struct rlimit rl;

	rl.rlim_cur = rl.rlim_max = (rlim_t)max_rss_mb << 20;
	setrlimit(RLIMIT_AS, &rl);
#endif
	alarm(timeout_s);
}

/* Runs PATH in a child under the limits; 0 if it passed. */
static int replay_file(const char *path)
{
	struct timeval t0, t1;
	struct rusage ru;
	int status;
	double secs;
	pid_t pid;

	fflush(NULL);
	gettimeofday(&t0, NULL);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "%s: cannot fork: %s\n", self, strerror(errno));
		return -1;
	}
	if (pid == 0) {
		limit_child();
		execl("/proc/self/exe", self, "--one", path, (char *)NULL);
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) < 0)
		return -1;
	gettimeofday(&t1, NULL);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_usec - t0.tv_usec) / 1e6;
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
		fprintf(stderr, "%s: '%s': over the time limit of %u s\n",
			self, path, timeout_s);
		return -1;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 3) {
		fprintf(stderr, "%s: '%s': ran out of memory under the limit of %lu MB\n",
			self, path, max_rss_mb);
		return -1;
	}
	if (WIFSIGNALED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "%s: '%s': failed (%s %d) after %.1f s, %ld MB; over %lu MB counts as a failure\n",
			self, path, WIFSIGNALED(status) ? "signal" : "exit status",
			WIFSIGNALED(status) ? WTERMSIG(status)
					    : WEXITSTATUS(status),
			secs, ru.ru_maxrss / 1024, max_rss_mb);
		return -1;
	}
	if ((unsigned long)ru.ru_maxrss / 1024 > max_rss_mb) {
		fprintf(stderr, "%s: '%s': used %ld MB, over the limit of %lu MB\n",
			self, path, ru.ru_maxrss / 1024, max_rss_mb);
		return -1;
	}
	return 0;
}

static int replay(const char *path, unsigned *count)
{
	struct stat st;
	struct dirent **names;
	int n, ret = 0;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "%s: '%s': %s\n", self, path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return replay_file(path);
	}
	/* In order: the same failures come first on every machine. */
	n = scandir(path, &names, NULL, alphasort);
	if (n < 0) {
		fprintf(stderr, "%s: cannot read '%s': %s\n", self, path,
			strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char full[4096];

		snprintf(full, sizeof(full), "%s/%s", path, names[i]->d_name);
		if (names[i]->d_name[0] != '.' && stat(full, &st) == 0 &&
		    S_ISREG(st.st_mode)) {
			(*count)++;
			if (replay_file(full) < 0)
				ret = -1;
		}
		free(names[i]);
	}
	free(names);
	return ret;
}

int main(int argc, char **argv)
{
	unsigned count = 0, failed = 0;

	self = argv[0];
	if (argc == 3 && strcmp(argv[1], "--one") == 0)
		return run_one(argv[2]);
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", self);
		return 2;
	}
	timeout_s = (unsigned)env_number("Q2E_FUZZ_TIMEOUT", timeout_s);
	max_rss_mb = env_number("Q2E_FUZZ_MAX_RSS_MB", max_rss_mb);
	for (int i = 1; i < argc; i++)
		if (replay(argv[i], &count) < 0)
			failed++;
	printf("%s: %u inputs replayed, each under %u s and %lu MB, %s%s\n",
	       self, count, timeout_s, max_rss_mb, SANITIZERS,
	       failed ? "; some failed" : "");
	return failed ? 1 : 0;
}
#endif

// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The read baselines of contrib/bench: reads the byte ranges listed in
 * RANGES ("offset size" per line, sorted by offset) from FILE and throws
 * them away, the way a tool that knew every range in advance could.
 *
 *   readranges seq FILE RANGES      one pread() after another, in order
 *   readranges advise FILE RANGES   posix_fadvise(WILLNEED) on every range
 *                                   first, then the same reads
 *   readranges threads FILE RANGES  eight threads, each taking the next
 *                                   range (eight did best on a virtio disk)
 *   readranges copy FILE RANGES OUT one pread() after another, each range
 *                                   appended to the new file OUT
 *
 * The fastest of the first three is the benchmark's "best read" of the
 * bytes.  The copy is the least a dump must do when the cache is warm:
 * the same reads, and their bytes written to a file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (1u << 20)
#define THREADS 8

struct range {
	uint64_t off, len;
};

static struct range *ranges;
static size_t nranges;
static int fd;
static int out_fd = -1;
static atomic_size_t next_range;

static void die(const char *what)
{
	fprintf(stderr, "readranges: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void write_all(const char *buf, size_t n)
{
	while (n) {
		ssize_t put = write(out_fd, buf, n);

		if (put < 0 && errno == EINTR)
			continue;
		if (put < 0)
			die("write");
		buf += put;
		n -= (size_t)put;
	}
}

/* Reads R into BUF, or with copy, into BUF after the FILL bytes already
 * there, written out a whole CHUNK at a time as a copying tool would. */
static void read_range(const struct range *r, char *buf, size_t *fill)
{
	uint64_t done = 0;

	while (done < r->len) {
		size_t room = CHUNK - *fill;
		size_t n = r->len - done > room ? room : (size_t)(r->len - done);
		ssize_t got = pread(fd, buf + *fill, n, (off_t)(r->off + done));

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			die("pread");
		if (got == 0)
			break;
		done += (uint64_t)got;
		if (out_fd < 0)
			continue;
		*fill += (size_t)got;
		if (*fill == CHUNK) {
			write_all(buf, CHUNK);
			*fill = 0;
		}
	}
}

static void *worker(void *arg)
{
	char *buf = malloc(CHUNK);
	size_t fill = 0;

	(void)arg;
	if (!buf)
		die("malloc");
	for (;;) {
		size_t i = atomic_fetch_add(&next_range, 1);

		if (i >= nranges)
			break;
		read_range(&ranges[i], buf, &fill);
	}
	if (fill)
		write_all(buf, fill);
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	size_t cap = 0;
	uint64_t off, len;
	FILE *list;

	bool copy = argc == 5 && strcmp(argv[1], "copy") == 0;

	if (argc != 4 && !copy) {
		fprintf(stderr, "usage: readranges seq|advise|threads FILE RANGES\n"
				"       readranges copy FILE RANGES OUT\n");
		return 2;
	}
	if (strcmp(argv[1], "seq") && strcmp(argv[1], "advise") &&
	    strcmp(argv[1], "threads") && !copy) {
		fprintf(stderr, "readranges: unknown mode '%s'\n", argv[1]);
		return 2;
	}
	fd = open(argv[2], O_RDONLY);
	if (fd < 0)
		die(argv[2]);
	list = fopen(argv[3], "r");
	if (!list)
		die(argv[3]);
	if (copy) {
		out_fd = open(argv[4], O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (out_fd < 0)
			die(argv[4]);
	}
	while (fscanf(list, "%" SCNu64 " %" SCNu64, &off, &len) == 2) {
		if (nranges == cap) {
			cap = cap ? cap * 2 : 1024;
			ranges = realloc(ranges, cap * sizeof(*ranges));
			if (!ranges)
				die("realloc");
		}
		ranges[nranges++] = (struct range){ off, len };
	}
	if (strcmp(argv[1], "advise") == 0)
		for (size_t i = 0; i < nranges; i++)
			posix_fadvise(fd, (off_t)ranges[i].off,
				      (off_t)ranges[i].len, POSIX_FADV_WILLNEED);
	if (strcmp(argv[1], "threads") == 0) {
		pthread_t t[THREADS];

		for (int i = 0; i < THREADS; i++)
			if ((errno = pthread_create(&t[i], NULL, worker, NULL)))
				die("pthread_create");
		for (int i = 0; i < THREADS; i++)
			pthread_join(t[i], NULL);
	} else {
		worker(NULL);
	}
	return 0;
}

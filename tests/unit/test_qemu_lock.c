/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for QEMU's image locks (src/source/qemu_lock.c, through
 * q2e_source_open()): an image file on which another open file
 * description holds a lock as a VM writing it does is refused with
 * qemu-img's message; one held as a reader holds it is opened; and
 * q2e_source_set_force_share() opens either.  The locks are taken here as
 * QEMU's file driver takes them (shared OFD locks on single bytes), so
 * that the test needs no QEMU; tests/integration/t_parity.sh holds an
 * image open with qemu-io.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "source/source.h"

static char path[4096];

/* A file of QCOW2's magic and nothing else: enough to be opened. */
static int setup(void **state)
{
	static const unsigned char magic[4] = { 'Q', 'F', 'I', 0xfb };
	const char *dir = getenv("TMPDIR");
	int fd;

	snprintf(path, sizeof(path), "%s/q2e-test-lock-XXXXXX",
		 dir && *dir ? dir : "/tmp");
	fd = mkstemp(path);

	(void)state;
	if (fd < 0 || write(fd, magic, sizeof(magic)) != sizeof(magic))
		return -1;
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

/* Another open file description of PATH with a shared lock on each byte
 * of OFFS (ending with 0), as QEMU's qemu_lock_fd() takes them. */
static int hold(const off_t *offs)
{
	int fd = open(path, O_RDWR);

	assert_true(fd >= 0);
	for (; *offs; offs++) {
		struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET,
				    .l_start = *offs, .l_len = 1 };

		assert_int_equal(fcntl(fd, F_OFD_SETLK, &fl), 0);
	}
	return fd;
}

/* What opening PATH in ROLE says: "" where it opens. */
static const char *open_says(enum q2e_source_role role, struct q2e_error *err)
{
	struct q2e_source *src;

	memset(err, 0, sizeof(*err));
	if (q2e_source_open_as(path, role, &src, err) < 0)
		return err->msg;
	q2e_source_close(src);
	return "";
}

static void test_writer_refused(void **state)
{
	/* A VM: consistent read and write held, write and resize kept. */
	static const off_t vm[] = { 100, 101, 201, 203, 0 };
	struct q2e_error err;
	int fd = hold(vm);

	(void)state;
	assert_non_null(strstr(open_says(Q2E_SOURCE_METADATA, &err),
			       "Failed to get shared \"write\" lock"));
	assert_int_equal(err.code, Q2E_EIO);
	assert_non_null(strstr(err.msg, path));
	q2e_source_set_locking(true, true);	/* -U */
	assert_string_equal(open_says(Q2E_SOURCE_METADATA, &err), "");
	q2e_source_set_locking(false, true);
	close(fd);
	/* Its locks go with its file description. */
	assert_string_equal(open_says(Q2E_SOURCE_METADATA, &err), "");
}

/* Each byte another process holds, against each way of opening: what
 * raw_check_lock_bytes() says for the permissions qemu-img asks. */
static void test_each_lock(void **state)
{
	static const char W[] = "Failed to get shared \"write\" lock";
	static const char R[] = "Failed to get shared \"resize\" lock";
	static const char C[] = "Failed to get \"consistent read\" lock";
	static const struct {
		off_t off;
		/* metadata, data file, metadata -U, metadata for info */
		const char *says[4];
	} cases[] = {
		{ 100, { "", "", "", "" } },	/* a reader */
		{ 101, { W, "", "", W } },	/* a writer */
		{ 102, { "", "", "", "" } },
		{ 103, { R, R, "", R } },	/* one that resizes */
		{ 200, { C, C, C, "" } },	/* one that lets no one read */
		{ 201, { "", "", "", "" } },	/* lets no one write */
		{ 203, { "", "", "", "" } },
	};
	struct q2e_error err;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const off_t offs[] = { cases[i].off, 0 };
		int fd = hold(offs);

		for (int k = 0; k < 4; k++) {
			const char *says;

			q2e_source_set_locking(k == 2, k != 3);
			says = open_says(k == 1 ? Q2E_SOURCE_DATA
						: Q2E_SOURCE_METADATA, &err);
			if (!*cases[i].says[k])
				assert_string_equal(says, "");
			else
				assert_non_null(strstr(says, cases[i].says[k]));
		}
		q2e_source_set_locking(false, true);
		close(fd);
	}
}

/* Whether another file description sees a lock on byte OFF of PATH. */
static bool seen_locked(off_t off)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = off, .l_len = 1 };
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_OFD_GETLK, &fl), 0);
	close(fd);
	return fl.l_type != F_UNLCK;
}

/* While open, the file holds what qemu-img holds, so that a VM starting
 * to write it meanwhile is refused ("Failed to get "write" lock"). */
static void test_holds_locks(void **state)
{
	static const struct {
		bool force, reads;
		enum q2e_source_role role;
		bool held[3];	/* bytes 100, 201, 203 */
	} cases[] = {
		{ false, true, Q2E_SOURCE_METADATA, { true, true, true } },
		{ false, true, Q2E_SOURCE_DATA, { true, false, true } },
		{ true, true, Q2E_SOURCE_METADATA, { true, false, false } },
		{ false, false, Q2E_SOURCE_METADATA, { false, true, true } },
	};
	static const off_t bytes[3] = { 100, 201, 203 };
	struct q2e_error err = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct q2e_source *src;

		q2e_source_set_locking(cases[i].force, cases[i].reads);
		assert_int_equal(q2e_source_open_as(path, cases[i].role, &src,
						    &err), 0);
		for (int b = 0; b < 3; b++)
			assert_int_equal(seen_locked(bytes[b]),
					 cases[i].held[b]);
		q2e_source_close(src);
		for (int b = 0; b < 3; b++)
			assert_false(seen_locked(bytes[b]));
	}
	q2e_source_set_locking(false, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_writer_refused),
		cmocka_unit_test(test_each_lock),
		cmocka_unit_test(test_holds_locks),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

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

static char path[] = "/tmp/q2e-test-lock-XXXXXX";

/* A file of QCOW2's magic and nothing else: enough to be opened. */
static int setup(void **state)
{
	static const unsigned char magic[4] = { 'Q', 'F', 'I', 0xfb };
	int fd = mkstemp(path);

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

/* What opening PATH says: "" where it opens. */
static const char *open_says(struct q2e_error *err)
{
	struct q2e_source *src;

	memset(err, 0, sizeof(*err));
	if (q2e_source_open(path, &src, err) < 0)
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
	assert_non_null(strstr(open_says(&err),
			       "Failed to get shared \"write\" lock"));
	assert_int_equal(err.code, Q2E_EIO);
	assert_non_null(strstr(err.msg, path));
	q2e_source_set_force_share(true);
	assert_string_equal(open_says(&err), "");
	q2e_source_set_force_share(false);
	close(fd);
	/* Its locks go with its file description. */
	assert_string_equal(open_says(&err), "");
}

static void test_each_lock(void **state)
{
	static const struct {
		off_t off;
		const char *says;
	} cases[] = {
		{ 100, "" },	/* consistent read: held by readers */
		{ 102, "" },	/* write unchanged */
		{ 101, "Failed to get shared \"write\" lock" },
		{ 103, "Failed to get shared \"resize\" lock" },
		{ 200, "Failed to get \"consistent read\" lock" },
		{ 201, "" },	/* a reader that lets no one write */
		{ 203, "" },
	};
	struct q2e_error err;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const off_t offs[] = { cases[i].off, 0 };
		int fd = hold(offs);
		const char *says = open_says(&err);

		if (!*cases[i].says)
			assert_string_equal(says, "");
		else
			assert_non_null(strstr(says, cases[i].says));
		close(fd);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_writer_refused),
		cmocka_unit_test(test_each_lock),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The image the check unit tests count for, shared by test_check_*.c. */
#ifndef Q2E_TEST_CHECK_FIXTURE_H
#define Q2E_TEST_CHECK_FIXTURE_H

#include "check/check_impl.h"

/*
 * IMG as a version 3 image file of NCLUSTERS clusters of 2^CBITS bytes
 * with refcounts of 2^ORDER bits, and C a checker over it with room for
 * every cluster and nothing counted.
 */
static inline void check_fixture_init(struct q2e_image *img, struct checker *c,
				      struct q2e_error *err, unsigned cbits,
				      unsigned order, uint64_t nclusters)
{
	img->path = "unit.qcow2";
	img->hdr.version = 3;
	img->cluster_size = UINT64_C(1) << cbits;
	img->hdr.cluster_bits = cbits;
	img->hdr.refcount_order = order;
	img->refcount_bits = 1U << order;
	img->file_size = nclusters << cbits;
	img->l2.cluster_bits = cbits;
	assert_int_equal(checker_init(c, img, NULL, err), 0);
	assert_int_equal(grow_counts(c, nclusters), 0);
}

#endif

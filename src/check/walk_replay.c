/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One walk of an L2 table, recorded for the L1 entries after it that name
 * the same table (count_l2_owners()).  qemu-img walks a table once for
 * each L1 entry that names it, and so did check, printing the same lines
 * each time: 16,384 active L1 entries naming one table whose 8,192
 * entries map clusters past the end of the file took 44 s for a 384 KB
 * file, formatting each line to find it was the last walk's again.
 *
 * A walk after the first (which makes the findings) does nothing that
 * depends on the walks before it, but for a count that reaches the
 * refcount's width: the same references, the same corruptions, the same
 * lines.  So where the recorded walk made no overflow line and the
 * counts of the clusters it referenced have room for the walks to come,
 * or are at the width with their overflow lines used up (each reference
 * then one overflow more, counted), those walks are made at once: each
 * cluster gets its references times their number, the corruptions and
 * the active table's statistics likewise, and each walk gets its lines
 * as an echo of the recorded walk's (report.c).  Otherwise they are
 * walked, as before: 4,096 L1 entries naming one table of 262,144
 * compressed clusters, each an overflow past the first walk, took 35 s.
 *
 * What a walk references: the runs the fast path took (c->runs), and each
 * reference the slow path counts (inc_count(), inc_cluster() while
 * c->rec.on), one per unit of c->mult.
 */
#include <stdlib.h>

#include "check/check_impl.h"
#include "qcow2elf/array.h"

void replay_start(struct checker *c, bool active)
{
	struct walk_record *r = &c->rec;
	const struct q2e_check_result *res = c->res;

	r->ready = false;
	r->on = true;
	r->active = active;
	r->mult = c->mult;
	r->n = 0;
	r->before[RR_CORRUPTIONS] = res->corruptions;
	r->before[RR_CHECK_ERRORS] = res->check_errors;
	r->before[RR_ALLOCATED] = res->allocated_clusters;
	r->before[RR_FRAGMENTED] = res->fragmented_clusters;
	r->before[RR_COMPRESSED] = res->compressed_clusters;
	r->overflows = c->overflows;
	r->overflow_refs = c->overflow_refs;
	r->kept = c->ovf.kept;
}

int replay_ref(struct checker *c, uint64_t k)
{
	struct walk_record *r = &c->rec;

	if (q2e_grow(r->k, r->cap, r->n + 1) < 0)
		return nomem(c);
	r->k[r->n++] = k;
	return 0;
}

static int cmp_u64(const void *pa, const void *pb)
{
	uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;

	return a < b ? -1 : a > b;
}

int replay_stop(struct checker *c, int ret)
{
	struct walk_record *r = &c->rec;
	const struct q2e_check_result *res = c->res;
	const uint64_t now[RR_N] = {
		res->corruptions, res->check_errors, res->allocated_clusters,
		res->fragmented_clusters, res->compressed_clusters,
	};

	uint64_t over = c->overflow_refs - r->overflow_refs;

	if (!r->on)
		return ret;
	r->on = false;
	/* A walk whose overflows made lines stands for none: the next is
	 * recorded, until one whose overflows were only counted (the lines
	 * kept are at most OVERFLOW_LINES_ALL), which can stand for those
	 * after it, each reference to a cluster at the refcount's width one
	 * overflow more (replay_apply()). */
	if (c->overflows != r->overflows && c->ovf.kept != r->kept)
		return ret;
	if (ret < 0 || !r->mult ||
	    (now[RR_CORRUPTIONS] - r->before[RR_CORRUPTIONS] - over) % r->mult)
		return ret;
	for (int i = 0; i < RR_N; i++)
		r->delta[i] = now[i] - r->before[i];
	/* By unit, the rest by walk; the overflows' are made again. */
	r->delta[RR_CORRUPTIONS] = (r->delta[RR_CORRUPTIONS] - over) / r->mult;
	for (size_t i = 0; i < c->nruns; i++)
		for (uint64_t t = 0; t < c->runs[i].n; t++)
			if (replay_ref(c, c->runs[i].k + t) < 0)
				return Q2E_ENOMEM;
	if (r->n > 1)
		qsort(r->k, r->n, sizeof(*r->k), cmp_u64);
	r->ready = true;
	return 0;
}

/* The references to the cluster at r->k[*I] on, *I moved past them. */
static uint64_t refs_at(const struct walk_record *r, size_t *i)
{
	size_t j = *i;

	while (*i < r->n && r->k[*i] == r->k[j])
		(*i)++;
	return *i - j;
}

uint64_t replay_room(const struct checker *c)
{
	const struct walk_record *r = &c->rec;
	uint64_t room = UINT64_MAX;

	if (!r->ready)
		return 0;
	for (size_t i = 0; i < r->n;) {
		uint64_t k = r->k[i], a = refs_at(r, &i);
		uint64_t v = get_count(c, k);
		uint64_t left = v < c->refcount_max ? c->refcount_max - v : 0;

		/* At the width, with its lines used up: any number. */
		if (!left && overflow_is_quiet(c, k))
			continue;
		if (left / a < room)
			room = left / a;
	}
	return room;
}

int replay_apply(struct checker *c, uint64_t units, uint64_t walks)
{
	const struct walk_record *r = &c->rec;
	struct q2e_check_result *res = c->res;

	for (size_t i = 0; i < r->n;) {
		uint64_t k = r->k[i], a = refs_at(r, &i);
		uint64_t v = get_count(c, k);
		struct overflow *q;
		int ret;

		/* replay_room() left room for each count short of the
		 * width: those at it overflow, without a line. */
		if (v >= c->refcount_max && (q = quiet_overflow_of(c, k))) {
			add_quiet_overflows(c, q, a * units);
			continue;
		}
		ret = set_count(c, k, v + a * units);
		if (ret < 0)
			return ret;
	}
	res->corruptions += r->delta[RR_CORRUPTIONS] * units;
	res->check_errors += r->delta[RR_CHECK_ERRORS] * walks;
	res->allocated_clusters += r->delta[RR_ALLOCATED] * walks;
	res->fragmented_clusters += r->delta[RR_FRAGMENTED] * walks;
	res->compressed_clusters += r->delta[RR_COMPRESSED] * walks;
	return 0;
}

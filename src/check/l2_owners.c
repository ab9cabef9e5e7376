/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * An L2 table counted for every L1 entry that reaches it, as qemu-img's
 * check_refcounts_l1() walks it once for each: a region, for its owners
 * (the model's record of the L1 entries naming it, count_l2_owners()), and
 * the file's first cluster, which QEMU reads as an L2 table for each L1
 * entry with flags but no offset (check_cluster0(), called as check_l1()
 * finds each; the model has no region for it).
 *
 * The first walk of a region makes its findings; the active table's walks
 * set the COPIED flags.  A snapshot's walk after them of a table that
 * holds nothing it would report is counted with the others' in one more
 * walk (check_l2_again()).  A walk after the first is recorded where
 * another alike follows (walk_replay.c) and stands for those after it,
 * as many as the counts have room for; the others are walked over the
 * entries that are not zero, their lines one record where they are the
 * last walk's again (echo_walk()).
 */
#include <stdlib.h>
#include <string.h>

#include "check/check_impl.h"
#include "qcow2elf/array.h"

/* Who reaches a table: a region's owners. */
struct reachers {
	const struct q2e_region *r;
	uint32_t n;
};

/*
 * Reacher K of RS: its L1 entry in the count, and whether it is the active
 * table's.  False for one whose references another counts (a snapshot
 * sharing its leader's L1 table, or one QEMU skips).
 */
static bool reacher(const struct checker *c, const struct reachers *rs,
		    uint32_t k, struct l2_reach *reach, bool *active)
{
	const struct q2e_image *img = c->img;
	const struct q2e_owner *o;

	o = &rs->r->owners[k];
	*active = o->kind == Q2E_OWNER_ACTIVE;
	if (*active) {
		*reach = (struct l2_reach){ (uint64_t)ST_ACTIVE << 32,
					    o->index + 1, 1 };
		return true;
	}
	/* The leader of a shared L1 counts for its group. */
	if (o->kind != Q2E_OWNER_SNAPSHOT || o->id >= img->nsnapshots ||
	    c->skip_snapshot[o->id] || c->res->snapshot_leader[o->id] != o->id)
		return false;
	*reach = (struct l2_reach){ (uint64_t)ST_SNAPSHOTS << 32 | o->id,
				    o->index + 1, c->group_n[o->id] };
	return true;
}

/* The lines of a walk for the L1 entry ONE that SRC's walk stands for. */
static int echo_owner(struct checker *c, const struct walk_lines *src,
		      const struct l2_reach *one)
{
	uint64_t key[3];
	int ret;

	if (!src->count)
		return 0;
	memcpy(key, c->key, sizeof(key));
	set_key(c, one->k0, one->k1, c->res->lines[src->from].key[2]);
	ret = add_echo_line(c, src);
	memcpy(c->key, key, sizeof(key));
	return ret;
}

/* Whether the next reacher after K that is counted is, like K, the active
 * table's or not. */
static bool alike_follows(const struct checker *c, const struct reachers *rs,
			  uint32_t k, bool active)
{
	struct l2_reach one;
	bool a;

	for (uint32_t e = k + 1; e < rs->n; e++)
		if (reacher(c, rs, e, &one, &a))
			return a == active;
	return false;
}

/* Whether the recorded walk can stand for a walk of an ACTIVE table's
 * entry or not, SRC its lines: all of them, none joined to a line before
 * it. */
static bool replayable(const struct checker *c, bool active,
		       const struct walk_lines *src)
{
	return c->rec.ready && c->rec.active == active && src->whole &&
	       (!src->count || src->echoable);
}

/*
 * The walks for the reachers from K on that the recorded walk
 * (walk_replay.c) stands for, made at once: those that follow alike (the
 * active table's or not), as many as the counts have room for.  Their
 * lines are echoes of SRC.  *TAKEN: how many reachers from K on (0: none,
 * K is to be walked).
 */
static int replay_reachers(struct checker *c, const struct reachers *rs,
			   uint32_t k, const struct walk_lines *src,
			   uint32_t *taken)
{
	uint64_t units = 0, walks = 0, room;
	struct l2_reach one;
	bool active, a;
	uint32_t e = k;
	int ret;

	*taken = 0;
	reacher(c, rs, k, &one, &active);
	if (!replayable(c, active, src))
		return 0;
	room = replay_room(c);
	for (; e < rs->n; e++) {
		bool counted = reacher(c, rs, e, &one, &a);

		if (a != active)
			break;
		if (!counted)
			continue;
		if (one.mult > room - units)
			break;
		units += one.mult;
		walks++;
	}
	if (!walks)
		return 0;
	ret = replay_apply(c, units, walks);
	for (uint32_t i = k; ret == 0 && i < e; i++)
		if (reacher(c, rs, i, &one, &a))
			ret = echo_owner(c, src, &one);
	*taken = e - k;
	return ret;
}

/* The table in c->buf (SIZE bytes, region RS->r) for each reacher of
 * RS. */
static int count_reachers(struct checker *c, const struct reachers *rs,
			  uint64_t size)
{
	struct walk_lines src = { 0 };
	size_t n = 0;
	bool first = true;
	int ret = 0;

	/* A table of zeros maps nothing and prints nothing, however many
	 * L1 entries name it (65,536 naming one of 2 MiB took 17 s). */
	if (q2e_all_zero(c->buf, (size_t)size))
		return 0;
	c->rec.ready = false;
	for (uint32_t k = 0; k < rs->n; k++) {
		struct l2_reach one;
		bool active, echoed, record;
		struct line_mark m;

		if (!reacher(c, rs, k, &one, &active))
			continue;
		if (!first && !active && c->l2_plain) {
			if (q2e_grow(c->reach, c->reach_cap, n + 1) < 0) {
				ret = nomem(c);
				break;
			}
			c->reach[n++] = one;
			continue;
		}
		if (!first) {
			uint32_t taken;

			ret = replay_reachers(c, rs, k, &src, &taken);
			if (ret < 0)
				break;
			if (taken) {
				k += taken - 1;
				continue;
			}
		}
		/* A table walked again for its lines is walked over its
		 * entries that are not zero. */
		if (!first && !c->l2_plain && !c->walk_spans) {
			ret = l2_nonzero_spans(c, c->buf, &c->table_spans);
			if (ret < 0)
				break;
			c->walk_spans = &c->table_spans;
		}
		record = !first && alike_follows(c, rs, k, active);
		if (record)
			replay_start(c, active);
		mark_lines(c, &m);
		c->mult = one.mult;
		ret = check_l2(c, rs->r, one.k0, one.k1, active, first);
		if (record)
			ret = replay_stop(c, ret);
		/* Each walk prints the table's lines again, as qemu-img's
		 * does: one record stands for them where they are the last
		 * walk's (unless an overflow began or ended between).  With
		 * c->mult still the walk's: lines_since() reads it. */
		echoed = false;
		if (ret == 0 && !first)
			ret = echo_walk(c, &m, &src, &echoed);
		if (ret == 0 && !echoed)
			lines_since(c, &m, &src);
		c->mult = 1;
		if (ret < 0)
			break;
		first = false;
	}
	c->walk_spans = NULL;
	c->rec.ready = false;
	if (ret < 0)
		return ret;
	return n ? check_l2_again(c, c->reach, n) : 0;
}

int count_l2_owners(struct checker *c, const struct q2e_region *r)
{
	const struct reachers rs = { r, r->nowners };

	return count_reachers(c, &rs, r->size);
}

int check_cluster0(struct checker *c, uint64_t k0, uint64_t k1, bool active)
{
	const struct l2_reach one = { k0, k1, c->mult };
	struct walk_lines *src = &c->cluster0_src;
	uint8_t *own = c->buf;
	struct line_mark m;
	bool echoed = false;
	int ret;

	if (!c->cluster0) {
		if (!(c->cluster0 = malloc(c->cs)))
			return nomem(c);
		c->buf = c->cluster0;
		ret = read_cluster(c, NULL, 0);
		if (ret == 0)
			ret = l2_nonzero_spans(c, c->cluster0,
					       &c->cluster0_spans);
		c->buf = own;
		if (ret < 0) {
			free(c->cluster0);
			c->cluster0 = NULL;
			return ret;
		}
		c->rec.ready = false;
	}
	/* The last walk stands for this one, as in replay_reachers(). */
	if (replayable(c, active, src) && replay_room(c) >= one.mult) {
		ret = replay_apply(c, one.mult, 1);
		return ret < 0 ? ret : echo_owner(c, src, &one);
	}
	c->buf = c->cluster0;
	c->walk_spans = &c->cluster0_spans;
	replay_start(c, active);
	mark_lines(c, &m);
	ret = replay_stop(c, check_l2(c, NULL, k0, k1, active, false));
	if (ret == 0 && c->cluster0_walked)
		ret = echo_walk(c, &m, src, &echoed);
	if (ret == 0 && !echoed)
		lines_since(c, &m, src);
	c->cluster0_walked = true;
	c->walk_spans = NULL;
	c->buf = own;
	return ret;
}

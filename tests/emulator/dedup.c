// SPDX-License-Identifier: MIT
/*
 * The duplicate cache; see dedup.h. Entries sit in a hash table for lookup and in a
 * FIFO for expiry: every entry lives equally long and the emulator's clock only moves
 * forward, so the oldest entry is always at the head.
 */
#include "dedup.h"

#include "emulator.h"
#include "util.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define N_BUCKETS (1u << 16)

struct key {
	uint8_t addr[16];
	uint16_t port;
	uint16_t mid;
	uint8_t family;
	uint8_t dtls;
};

struct entry {
	struct key key;
	uint64_t expires_us;
	struct answer answer;
	struct entry *bucket_next;
	struct entry *fifo_next;
};

struct dedup {
	struct entry *buckets[N_BUCKETS];
	struct entry *oldest, *newest;
	size_t n_entries;
};

static struct key make_key(bool dtls, const struct sockaddr *client, uint16_t mid)
{
	struct key k;

	memset(&k, 0, sizeof(k)); /* the padding is hashed and compared too */
	k.dtls = dtls;
	k.mid = mid;
	k.family = (uint8_t)client->sa_family;
	if (client->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)client;

		memcpy(k.addr, &in->sin_addr, 4);
		k.port = in->sin_port;
	} else if (client->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)client;

		memcpy(k.addr, &in6->sin6_addr, 16);
		k.port = in6->sin6_port;
	}
	return k;
}

static struct entry **bucket_of(struct dedup *dedup, const struct key *k)
{
	return &dedup->buckets[crc32(0, (const Bytef *)k, sizeof(*k)) % N_BUCKETS];
}

static void forget_oldest(struct dedup *dedup)
{
	struct entry *e = dedup->oldest;

	for (struct entry **p = bucket_of(dedup, &e->key); *p; p = &(*p)->bucket_next)
		if (*p == e) {
			*p = e->bucket_next;
			break;
		}
	dedup->oldest = e->fifo_next;
	if (!dedup->oldest)
		dedup->newest = NULL;
	dedup->n_entries--;
	free(e->answer.body);
	free(e);
}

static void expire(struct dedup *dedup, uint64_t now_us)
{
	while (dedup->oldest && dedup->oldest->expires_us <= now_us)
		forget_oldest(dedup);
}

const struct answer *dedup_find(struct dedup *dedup, bool dtls, const struct sockaddr *client,
				uint16_t mid, uint64_t now_us)
{
	struct key k = make_key(dtls, client, mid);

	expire(dedup, now_us);
	for (struct entry *e = *bucket_of(dedup, &k); e; e = e->bucket_next)
		if (memcmp(&e->key, &k, sizeof(k)) == 0)
			return &e->answer;
	return NULL;
}

void dedup_remember(struct dedup *dedup, bool dtls, const struct sockaddr *client, uint16_t mid,
		    uint64_t now_us, const struct answer *answer)
{
	struct entry *e = xcalloc(1, sizeof(*e));
	struct entry **bucket;

	expire(dedup, now_us);
	if (dedup->n_entries >= DEDUP_MAX_ENTRIES)
		forget_oldest(dedup);
	e->key = make_key(dtls, client, mid);
	e->expires_us = now_us + NCE_EXCHANGE_LIFETIME_US;
	e->answer.code = answer->code;
	e->answer.json = answer->json;
	e->answer.body = answer->body ? xstrdup(answer->body) : NULL;
	bucket = bucket_of(dedup, &e->key);
	e->bucket_next = *bucket;
	*bucket = e;
	if (dedup->newest)
		dedup->newest->fifo_next = e;
	else
		dedup->oldest = e;
	dedup->newest = e;
	dedup->n_entries++;
}

struct dedup *dedup_new(void)
{
	return xcalloc(1, sizeof(struct dedup));
}

void dedup_free(struct dedup *dedup)
{
	if (!dedup)
		return;
	while (dedup->oldest)
		forget_oldest(dedup);
	free(dedup);
}

/* SPDX-License-Identifier: MIT */
/*
 * The simulated network between the devices and the CoAP server: the emulator's public
 * UDP sockets are a relay, like a carrier's NAT. Each client address gets a socket of
 * its own towards libcoap's internal endpoint (a "flow"), so libcoap sees one peer per
 * client and the server can map that peer back to the client's real address, which is
 * how 1NCE identifies a device. Loss, delay, silence and NAT timeouts (struct faults)
 * are applied here, per datagram and per direction, because the kernel has no netem.
 */
#ifndef NCE_RELAY_H
#define NCE_RELAY_H

#include <stddef.h>
#include <sys/socket.h>

struct emulator;
struct relay;

int relay_new(struct emulator *emu, struct relay **ret_relay);
void relay_free(struct relay *relay);

/*
 * Open a public UDP socket on listen ("ADDR:PORT", "[V6ADDR]:PORT"; port 0 picks a free
 * port) whose datagrams go to the internal address. Writes the bound address as text to
 * ret_bound. Returns 0 or -errno; logs nothing.
 */
int relay_add_listener(struct relay *relay, const char *listen, const struct sockaddr *internal,
		       socklen_t internal_len, char *ret_bound, size_t bound_size);

/*
 * The real client address behind the internal peer libcoap reports for a session, or
 * NULL if that flow is gone. The pointer is valid until the next event loop iteration.
 */
const struct sockaddr *relay_client_address(const struct relay *relay,
					    const struct sockaddr *internal_peer);

/* Forget every flow, as a NAT reboot does: clients reappear as new peers. */
void relay_forget_all(struct relay *relay);

/* Re-arm the delay timer after the fault settings changed. */
void relay_faults_changed(struct relay *relay);

#endif

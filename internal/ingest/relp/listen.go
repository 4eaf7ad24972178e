package relp

import (
	"context"
	"fmt"
	"net"
)

// ListenMSS is the TCP maximum segment size that Listen advertises to
// clients: an Ethernet-sized segment (1500-byte MTU less IPv4/TCP headers and
// timestamps).
//
// librelp corks its socket (TCP_CORK) for each rsyslog transaction, so the
// frames it sends leave in whole segments only, or after Linux's 200 ms cork
// timeout. With loopback's 64 KiB MSS a full window of 128 syslog frames fits
// in one unfinished segment: every window then waits 200 ms and a local
// rsyslog forwards about 700 messages/s. With an Ethernet-sized MSS the
// segments flow as acknowledgements free the window (50,000 to 100,000
// messages/s in the same test).
const ListenMSS = 1448

// ListenConfig returns a net.ListenConfig for RELP listeners. On Linux its
// sockets advertise ListenMSS (see there for why); elsewhere it is the zero
// net.ListenConfig.
func ListenConfig() *net.ListenConfig {
	return &net.ListenConfig{Control: clampMSS}
}

// Listen listens on a TCP address (network "tcp", "tcp4" or "tcp6") with
// ListenConfig. Wrap the result with tls.NewListener for RELP over TLS.
func Listen(ctx context.Context, network, address string) (net.Listener, error) {
	ln, err := ListenConfig().Listen(ctx, network, address)
	if err != nil {
		return nil, fmt.Errorf("relp: listen on %s: %w", address, err)
	}
	return ln, nil
}

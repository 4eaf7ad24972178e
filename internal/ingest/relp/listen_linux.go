package relp

import (
	"fmt"
	"strings"
	"syscall"
)

// clampMSS sets TCP_MAXSEG on a listening socket before it listens, so that
// the SYN-ACK advertises ListenMSS.
func clampMSS(network, address string, c syscall.RawConn) error {
	if !strings.HasPrefix(network, "tcp") {
		return nil
	}
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, ListenMSS)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("set TCP_MAXSEG %d on %s: %w", ListenMSS, address, serr)
	}
	return nil
}

package fieldsim

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// CheckLoopback refuses a gRPC target that is not on this machine: the
// simulator floods what it points at with hundreds of fake inspectors, and
// that must never be a county's production server.
func CheckLoopback(target string) error {
	host, _, err := net.SplitHostPort(strings.TrimPrefix(target, "dns:///"))
	if err != nil {
		return fmt.Errorf("target %q: want host:port (%v)", target, err)
	}
	return checkHost(target, host)
}

// CheckDatabaseLoopback refuses a DATABASE_URL that is not on this machine
// (a Unix socket or a loopback address).
func CheckDatabaseLoopback(dbURL string) error {
	u, err := url.Parse(dbURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return fmt.Errorf("DATABASE_URL is not a postgres:// URL")
	}
	host := u.Hostname()
	if h := u.Query().Get("host"); h != "" {
		host = h
	}
	if host == "" || strings.HasPrefix(host, "/") {
		return nil // Unix socket
	}
	return checkHost("DATABASE_URL", host)
}

func checkHost(what, host string) error {
	if host == "" {
		return fmt.Errorf("%s: no host given; fieldsim only drives a stack on this machine (use 127.0.0.1)", what)
	}
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return fmt.Errorf("%s: %s is not a loopback address; fieldsim only drives a stack on this machine", what, host)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return fmt.Errorf("%s: resolving %s: %v", what, host, err)
	}
	if len(ips) == 0 {
		return fmt.Errorf("%s: %s resolves to nothing", what, host)
	}
	for _, ip := range ips {
		if !ip.IP.IsLoopback() {
			return fmt.Errorf("%s: %s resolves to %s, which is not a loopback address; fieldsim only drives a stack on this machine", what, host, ip.IP)
		}
	}
	return nil
}

package fieldsim

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// Addresses splits a comma-separated list of replica addresses
// ("127.0.0.1:7443,127.0.0.1:7453"), dropping blanks.
func Addresses(list string) []string {
	var out []string
	for _, a := range strings.Split(list, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// checkReplicas applies CheckLoopback to every address of list.
func checkReplicas(list string) error {
	addrs := Addresses(list)
	if len(addrs) == 0 {
		return errors.New("no address given")
	}
	var errs []error
	for _, a := range addrs {
		errs = append(errs, CheckLoopback(a))
	}
	return errors.Join(errs...)
}

// dial connects to one server, or to several replicas of one: the calls
// are spread over every replica that is up (round robin, as a gRPC-aware
// load balancer in front of the replicas would), and when one dies its
// connection is dropped from the rotation, so the retry of a call that
// failed with it (Unavailable: the ids make it safe) goes to a replica
// that is up. A replica that comes back rejoins the rotation.
func dial(list string) (*grpc.ClientConn, error) {
	addrs := Addresses(list)
	switch len(addrs) {
	case 0:
		return nil, errors.New("no address given")
	case 1:
		return grpc.NewClient(addrs[0], grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	r := manual.NewBuilderWithScheme("fieldsim")
	var state resolver.State
	for _, a := range addrs {
		state.Endpoints = append(state.Endpoints, resolver.Endpoint{Addresses: []resolver.Address{{Addr: a}}})
	}
	r.InitialState(state)
	conn, err := grpc.NewClient(r.Scheme()+":///replicas", grpc.WithResolvers(r),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig": [{"round_robin": {}}]}`))
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", list, err)
	}
	return conn, nil
}

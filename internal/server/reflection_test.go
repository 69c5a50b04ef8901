package server_test

import (
	"context"
	"strings"
	"testing"

	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	"ecogrid/internal/server"
)

// TestReflectionShowsComments asks reflection for a service's file as
// grpcurl describe does and checks that the proto comments came with it:
// generated Go descriptors carry none, so this fails if the server falls
// back to protoregistry.GlobalFiles.
func TestReflectionShowsComments(t *testing.T) {
	t.Parallel()
	h := start(t, &sleeper{}, server.Config{})
	ctx := context.Background()
	stream, err := reflectionpb.NewServerReflectionClient(h.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, symbol := range []string{"ecogrid.v1.GridService", "ecogrid.v1.CaseService"} {
		if err := stream.Send(&reflectionpb.ServerReflectionRequest{
			MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: symbol},
		}); err != nil {
			t.Fatal(err)
		}
		rr, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		raw := rr.GetFileDescriptorResponse().GetFileDescriptorProto()
		if len(raw) == 0 {
			t.Fatalf("%s: no file descriptor: %v", symbol, rr.GetErrorResponse())
		}
		var fd descriptorpb.FileDescriptorProto
		if err := proto.Unmarshal(raw[0], &fd); err != nil {
			t.Fatal(err)
		}
		var comments int
		var sample string
		for _, loc := range fd.GetSourceCodeInfo().GetLocation() {
			if c := strings.TrimSpace(loc.GetLeadingComments()); c != "" {
				comments++
				sample = c
			}
		}
		if comments < 10 {
			t.Fatalf("%s (%s): %d leading comments served by reflection, want the file's documentation", symbol, fd.GetName(), comments)
		}
		t.Logf("%s: %d comments, e.g. %.60q", fd.GetName(), comments, sample)
	}
	// Services outside proto/ (health) still resolve, from the global registry.
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "grpc.health.v1.Health"},
	}); err != nil {
		t.Fatal(err)
	}
	rr, err := stream.Recv()
	if err != nil || len(rr.GetFileDescriptorResponse().GetFileDescriptorProto()) == 0 {
		t.Fatalf("health via reflection: %v %v", rr.GetErrorResponse(), err)
	}
}

package server

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/reflection"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	protoset "ecogrid/proto"
)

// documentedFiles is ecogrid's protos as compiled with their comments.
// Generated Go code carries descriptors without source info, so
// reflection served from protoregistry.GlobalFiles shows no documentation;
// served from these, `grpcurl describe` prints every comment of proto/.
func documentedFiles(set []byte) (*protoregistry.Files, error) {
	var fds descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(set, &fds); err != nil {
		return nil, fmt.Errorf("embedded proto descriptors: %w", err)
	}
	files, err := protodesc.NewFiles(&fds)
	if err != nil {
		return nil, fmt.Errorf("embedded proto descriptors: %w", err)
	}
	return files, nil
}

// layeredResolver answers from the documented files first and falls back
// to the global registry for what proto/ does not hold (health,
// reflection itself).
type layeredResolver struct {
	first, then *protoregistry.Files
}

func (r layeredResolver) FindFileByPath(path string) (protoreflect.FileDescriptor, error) {
	if fd, err := r.first.FindFileByPath(path); err == nil {
		return fd, nil
	}
	return r.then.FindFileByPath(path)
}

func (r layeredResolver) FindDescriptorByName(name protoreflect.FullName) (protoreflect.Descriptor, error) {
	if d, err := r.first.FindDescriptorByName(name); err == nil {
		return d, nil
	}
	return r.then.FindDescriptorByName(name)
}

// registerReflection serves gRPC reflection (v1 and v1alpha) with the
// documented descriptors. A broken embedded set is a build defect, caught
// by the server tests, so it falls back to the undocumented registry
// rather than refusing to start.
func registerReflection(gs *grpc.Server) error {
	files, err := documentedFiles(protoset.Descriptors)
	if err != nil {
		reflection.Register(gs)
		return err
	}
	opts := reflection.ServerOptions{
		Services:           gs,
		DescriptorResolver: layeredResolver{first: files, then: protoregistry.GlobalFiles},
	}
	reflectionv1.RegisterServerReflectionServer(gs, reflection.NewServerV1(opts))
	reflectionv1alpha.RegisterServerReflectionServer(gs, reflection.NewServer(opts))
	return nil
}

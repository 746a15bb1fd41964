// The gRPC service the gRPC tests call through the gateway, shared by the host (grpc-host.mjs)
// and the clients (test/grpc.test.ts): a track catalogue, its messages as JSON so no .proto
// file or code generation stands between the test and the wire. Get is safe to repeat, Charge
// is not, Slow answers after two seconds, Watch streams `count` updates 40 ms apart, Chat
// answers each message of a stream both ways as it comes.
const json = {
  serialize: (value) => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes) => JSON.parse(bytes.toString()),
};

function method(name, responseStream, requestStream = false) {
  return {
    path: `/gangway.test.Catalogue/${name}`,
    requestStream,
    responseStream,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  };
}

export const CATALOGUE = {
  Get: method('Get', false),
  Charge: method('Charge', false),
  Slow: method('Slow', false),
  Watch: method('Watch', true),
  Chat: method('Chat', true, true),
};

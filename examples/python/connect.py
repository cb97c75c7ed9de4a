"""The one way the Python examples open a channel: `host:port` and
`http(s)://host:port` alike, TLS for https."""


def channel(server):
    import grpc

    if server.startswith("https://"):
        return grpc.secure_channel(server[len("https://"):], grpc.ssl_channel_credentials())
    return grpc.insecure_channel(server.removeprefix("http://"))

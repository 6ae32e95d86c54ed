"""The node-to-node channel: the cluster secret, the mutual TLS derived from it, the frames
and the pooled, pipelined connections between nodes (docs/cluster-security.md)."""

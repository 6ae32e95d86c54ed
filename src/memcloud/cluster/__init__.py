"""The node-to-node channel (docs/cluster-security.md): the cluster secret every node shares
(`secrets`), the mutual TLS derived from it (`identity`), the frames (`wire`, sans-IO), and
the server and pooled, pipelined client links that carry them (`channel`).

A library: the node wires it in (forwarding, and the API reaching every node). It imports
nothing of ours but `config`.
"""

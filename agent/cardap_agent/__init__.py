"""cardap-agent: the terminal agent of the card AP loading service.

It holds a long poll open to the server, runs the APDU scripts it is sent against the card in
the terminal's PC/SC reader (in order, stopping at the first unexpected status word) and returns
the responses. It holds no keys and makes no decisions. Protocol: docs/relay-protocol.md.
"""

__version__ = "0.1.0"

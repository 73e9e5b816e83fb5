"""Host side of the card protocol (docs/card-protocol.md): BER-TLV, APDUs, GlobalPlatform, SCP03.

Framework-free on purpose: the server, the terminal tools and the access module all import it, and
it must never import Django (a test proves it).

Modules: ``tlv`` BER-TLV · ``aid`` AIDs and the well-known ones · ``apdu`` command/response APDUs ·
``sw`` status words (English/Japanese) and ``CardError`` · ``apdesc`` card AP descriptions and
signed custom load files · ``gp`` GlobalPlatform commands and parsers · ``kdf`` AES-CMAC and the
SP 800-108 KDF · ``scp03`` SCP03 host sessions (batchable) · ``diversify`` per-card keys ·
``keystore`` encrypted key store · ``script`` Amendment B scripts · ``plans`` card AP operations
as command lists and ``SecureBatch`` · ``session`` ``CardSession`` over any transmit callable.
"""

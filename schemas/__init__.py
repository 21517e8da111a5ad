"""Wire schemas: frozen, tagged msgspec Structs; one module per message family (STYLE rule 8).

Every struct carries its version in its tag (``schema`` field), e.g. ``mla.envelope.header.v1``.
Fields may only be added, with defaults; any other change needs a ``.v2`` tag.
"""

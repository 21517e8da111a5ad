"""hub/audit package: the auditors' replay of the ledger (DESIGN.md section 4, issue 4).

``archive`` (the self-contained export format), ``replay`` (the pure verifier), ``jobs``
(signature checks a process pool can run), ``checkpoints`` (signed tree heads and witnesses),
``projection`` (rebuilt vs served directory), ``runner`` (the shell: files, pool, progress).
"""

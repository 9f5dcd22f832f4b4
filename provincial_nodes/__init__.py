"""Node mode: the same product on a province's (or a command's) LAN, linked to the centre.

* :mod:`provincial_nodes.control`: the control channel the node dials out to the centre.
* :mod:`provincial_nodes.replica`: the node's copy of its office's accounts, for sign-in during a cut.
* :mod:`provincial_nodes.upload`: the node's sealed recordings uploaded to the centre, resumably.
* :mod:`provincial_nodes.quota`: the node's disk quota for recordings (only what the centre holds goes).
"""

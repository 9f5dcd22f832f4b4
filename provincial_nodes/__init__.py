"""Node mode: the same product on a province's (or a command's) LAN, linked to the centre.

* :mod:`provincial_nodes.control`: the control channel the node dials out to the centre.
* :mod:`provincial_nodes.replica`: the node's copy of its office's accounts, for sign-in during a cut.
"""

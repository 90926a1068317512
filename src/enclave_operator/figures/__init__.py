"""The status figures of LAS, SGXPlugin and CAS, computed from nodes and pods. Pure."""

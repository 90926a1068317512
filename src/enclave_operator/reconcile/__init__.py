"""Reconciling CAS, LAS and SGXPlugin: observe → decide → act → report."""

"""The ``local`` infrastructure target: jobs run as supervised processes on this machine."""

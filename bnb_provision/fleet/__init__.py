"""Fleets through existing engines: the shipped Ansible playbook and Slurm batch script, run
on every node, their results gathered into one folder and read into a typed report."""

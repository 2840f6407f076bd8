"""Subcommands of the ``recon3d`` CLI (see recon3d_ros.cli)."""

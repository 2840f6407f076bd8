"""recon3d_ros: monocular metric depth and point clouds for ROS 2 cameras."""

__version__ = "0.1.0"

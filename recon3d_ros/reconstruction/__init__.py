"""3D reconstruction over time: depth fused into a TSDF map, a mesh and a surface cloud.

No rclpy here (the fusion node and the offline commands share it); Open3D is imported only
inside the functions and classes that need it, so these modules import without it.
"""

"""Robot progress and preference VQA (seed 004, RFM) for vtg.

``vtg robot-vqa generate`` turns robot trajectories (``.npz`` frame arrays) into a static VQA data
set of preference and progress questions; the ``robot_vqa`` task trains and evaluates on it.
Nothing heavy is imported here: the plugin module registers records and a command only.
"""

__version__ = "0.1.0"

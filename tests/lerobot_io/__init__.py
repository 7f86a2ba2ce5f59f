"""Tests of the LeRobot import, export and robodm-as-LeRobot dataset, with the real lerobot."""

"""GUI tests of the field app (Kivy, offscreen)."""

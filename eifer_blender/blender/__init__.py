"""bpy adapters: the only part of the package that imports bpy."""

// ProcessResolution

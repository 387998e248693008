// NetfilterSystem

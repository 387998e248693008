print("nfowner")

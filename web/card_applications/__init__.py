"""Card applications (issue 16): the Kołobrzeg card's whole life online and at the desk — apply with a photo,
pay the deposit, the desk's queue, collection, giving up, and the jobs (R-KKM-1..8)."""

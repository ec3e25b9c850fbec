"""Documents service: the structured data (Factur-X, ZUGFeRD, XRechnung, UBL) of collected documents (issue 14)."""

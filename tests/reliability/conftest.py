"""The MREC codes the data migrations seed (reliability 0004, 0005, 0007, 0010) are put back for
every database test by the root conftest (tests/reference_data.py) when a transactional test
elsewhere flushed them."""

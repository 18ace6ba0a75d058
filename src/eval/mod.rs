//! COCO bounding-box evaluation, numerically identical to pycocotools' COCOeval.

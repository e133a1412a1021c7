// Packet captures in and out of the dataplane.
export { readCapture, checkCaptureStart, PcapWriter, CaptureError, linkOf, LINKTYPE_ETHERNET, LINKTYPE_RAW, type Capture, type CaptureLink } from './capture.js'
export { runPcap, PcapFileError, DEFAULT_MAX_CAPTURE_BYTES, type RunPcapOptions, type PcapSummary, type PcapProxier } from './run-pcap.js'

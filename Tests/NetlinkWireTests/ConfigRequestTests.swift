import Testing
import NetlinkWire

/// Config requests against bytes derived by hand from struct nlmsghdr, struct nfgenmsg,
/// struct nlattr and nfnetlink_log.h. Header fields are host order (little-endian here);
/// attribute values big-endian.
@Suite("NFLOG config requests", .enabled(if: UInt16(1).littleEndian == 1, "goldens are little-endian"))
struct ConfigRequestTests {
    /// nlmsghdr for a config request (type 0x0401 = NFNL_SUBSYS_ULOG << 8 | NFULNL_MSG_CONFIG,
    /// flags 0x0005 = NLM_F_REQUEST | NLM_F_ACK, pid 0) followed by nfgenmsg AF_UNSPEC, v0, group 7.
    func header(length: UInt8, sequence: UInt8) -> [UInt8] {
        [length, 0, 0, 0,  0x01, 0x04,  0x05, 0x00,  sequence, 0, 0, 0,  0, 0, 0, 0,
         0x00, 0x00, 0x00, 0x07]
    }

    @Test func bind() {
        // NFULA_CFG_CMD: nla_len 5, type 1, command 1 (NFULNL_CFG_CMD_BIND), 3 pad bytes. 28 bytes.
        let golden = header(length: 28, sequence: 1) + [0x05, 0x00, 0x01, 0x00,  0x01, 0, 0, 0]
        #expect(NflogConfigRequest.encode(group: 7, sequence: 1, .command(.bind)) == golden)
    }

    @Test func unbind() {
        // Same with command 2 (NFULNL_CFG_CMD_UNBIND).
        let golden = header(length: 28, sequence: 2) + [0x05, 0x00, 0x01, 0x00,  0x02, 0, 0, 0]
        #expect(NflogConfigRequest.encode(group: 7, sequence: 2, .command(.unbind)) == golden)
    }

    @Test func copyPacket128() {
        // NFULA_CFG_MODE: nla_len 10 (4 + packed 6-byte struct nfulnl_msg_config_mode), type 2,
        // be32 copy_range 128, copy_mode 2 (NFULNL_COPY_PACKET), _pad 0, 2 alignment bytes. 32 bytes.
        let golden = header(length: 32, sequence: 3)
            + [0x0A, 0x00, 0x02, 0x00,  0x00, 0x00, 0x00, 0x80,  0x02, 0x00,  0, 0]
        #expect(NflogConfigRequest.encode(group: 7, sequence: 3, .copyMode(.packet, range: 128)) == golden)
    }

    @Test func bufferSize() {
        // NFULA_CFG_NLBUFSIZ: nla_len 8, type 3, be32 262144 bytes (0x00040000). 28 bytes.
        let golden = header(length: 28, sequence: 4) + [0x08, 0x00, 0x03, 0x00,  0x00, 0x04, 0x00, 0x00]
        #expect(NflogConfigRequest.encode(group: 7, sequence: 4, .bufferSize(262_144)) == golden)
    }

    @Test func flushTimeout() {
        // NFULA_CFG_TIMEOUT: nla_len 8, type 4, be32 100 (1/100 s, so one second). 28 bytes.
        let golden = header(length: 28, sequence: 5) + [0x08, 0x00, 0x04, 0x00,  0x00, 0x00, 0x00, 0x64]
        #expect(NflogConfigRequest.encode(group: 7, sequence: 5, .flushTimeout(100)) == golden)
    }

    @Test func queueThreshold() {
        // NFULA_CFG_QTHRESH: nla_len 8, type 5, be32 5 packets. 28 bytes.
        let golden = header(length: 28, sequence: 6) + [0x08, 0x00, 0x05, 0x00,  0x00, 0x00, 0x00, 0x05]
        #expect(NflogConfigRequest.encode(group: 7, sequence: 6, .queueThreshold(5)) == golden)
    }

    @Test func flags() {
        // NFULA_CFG_FLAGS: nla_len 6, type 6, be16 0x0003 (F_SEQ | F_SEQ_GLOBAL), 2 pad. 28 bytes.
        let golden = header(length: 28, sequence: 7) + [0x06, 0x00, 0x06, 0x00,  0x00, 0x03,  0, 0]
        #expect(NflogConfigRequest.encode(group: 7, sequence: 7, .flags([.sequence, .globalSequence])) == golden)
    }

    @Test func bindAndSequenceFlagInOneMessage() {
        // Both attributes back to back: 20 + 8 + 8 = 36 bytes.
        let golden = header(length: 36, sequence: 8)
            + [0x05, 0x00, 0x01, 0x00,  0x01, 0, 0, 0]
            + [0x06, 0x00, 0x06, 0x00,  0x00, 0x01,  0, 0]
        #expect(NflogConfigRequest.encode(group: 7, sequence: 8, [.command(.bind), .flags(.sequence)]) == golden)
    }

    @Test func groupIsBigEndianInResId() {
        let bytes = NflogConfigRequest.encode(group: 0x0102, sequence: 0, .command(.bind))
        #expect(Array(bytes[16..<20]) == [0x00, 0x00, 0x01, 0x02])
    }

    @Test func doneAndErrorEncoders() {
        // NLMSG_DONE: nlmsg_len 20, type 3, flags 0, seq 0, pid 0, nfgenmsg AF_UNSPEC v0 group 7,
        // the last 20 bytes of Fixtures/batch-5-udp4.bin.
        #expect(NetlinkMessageEncoder.done(group: 7)
            == [20, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7])
        let request = NflogConfigRequest.encode(group: 7, sequence: 77, .command(.bind))
        #expect(decodeAll(NetlinkMessageEncoder.error(errno: 1, answering: request)).items
            == [.error(errno: 1, sequence: 77)])
    }
}

internal import GRDB

/// The metrics sampler's reads (see `MetricsCensus`): two queries over small tables, on a reader.
extension SQLiteRelayStorage: MetricsCensus {
    func mailboxDepths() async throws -> [Int] {
        try await database.read { db in try Int.fetchAll(db, sql: "SELECT count FROM mailbox_counts WHERE count > 0") }
    }

    func devicesLowOnPreKeys(watermark: Int) async throws -> Int {
        try await database.read { db in
            try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM (
                  SELECT s.address, s.device_id,
                    (SELECT COUNT(*) FROM one_time_prekeys o WHERE o.address = s.address AND o.device_id = s.device_id AND o.kind = 'ec') AS ec,
                    (SELECT COUNT(*) FROM one_time_prekeys o WHERE o.address = s.address AND o.device_id = s.device_id AND o.kind = 'pq') AS pq
                  FROM signed_prekeys s WHERE s.kind = 'spk'
                ) WHERE ec < ? OR pq < ?
                """, arguments: [watermark, watermark]) ?? 0
        }
    }
}

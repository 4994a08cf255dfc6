import Logging
import NIOCore
import PostgresNIO

/// The statements on a message's way through the relay — a send's account read and enqueue, the token
/// check, the fetch and acknowledgement by token — as named prepared statements. PostgresNIO prepares
/// one on a connection the first time it runs there; after that a call is a Bind and an Execute of the
/// statement PostgreSQL parsed once (with the plan it may keep), where the unnamed statement of `query`
/// is parsed, analysed and planned anew on every call. A statement's name carries a version: a changed
/// text takes a new name.
extension PostgresRelayStorage {
    /// Runs a prepared statement on a connection of the pool (as `rows` runs a query).
    func run<Statement: PostgresPreparedStatement>(_ statement: Statement) async throws -> [Statement.Row] where Statement.Row: Sendable {
        let logger = logger
        return try await withConnection { connection in
            var rows: [Statement.Row] = []
            for try await row in try await connection.execute(statement, logger: logger) { rows.append(row) }
            return rows
        }
    }

    /// The device an unexpired token belongs to.
    struct TokenOwnerStatement: PostgresPreparedStatement {
        static let name = "parley_token_owner_v1"
        static let sql = "SELECT address, device_id FROM tokens WHERE hash = $1 AND expires_at > $2"
        typealias Row = (String, Int64)
        let hash: ByteBuffer
        let now: Int64

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 2)
            try bindings.append(hash)
            try bindings.append(now)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }

    /// A send's one read: the account and its delivery access verifier.
    struct AccountForDeliveryStatement: PostgresPreparedStatement {
        static let name = "parley_account_for_delivery_v1"
        static let sql = "SELECT account_key, device_list, access_verifier FROM accounts WHERE address = $1"
        typealias Row = (ByteBuffer, ByteBuffer, ByteBuffer?)
        let address: String

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 1)
            try bindings.append(address)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }

    /// A send's one write: `parley_enqueue_v3` (see `enqueue`).
    struct EnqueueStatement: PostgresPreparedStatement {
        static let name = "parley_enqueue_call_v3"
        static let sql = "SELECT outcome, full_device FROM parley_enqueue_v3($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        typealias Row = (String, Int64?)
        let address: String
        let deviceList: ByteBuffer
        let devices: [Int64]
        let bodies: [ByteBuffer]
        let wanted: [Int64]
        let room: Int64
        let received: Int64
        let expires: Int64
        let wakeKeys: [String]

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 9)
            try bindings.append(address)
            try bindings.append(deviceList)
            try bindings.append(devices)
            try bindings.append(bodies)
            try bindings.append(wanted)
            try bindings.append(room)
            try bindings.append(received)
            try bindings.append(expires)
            try bindings.append(wakeKeys)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }

    /// An acknowledgement and the next page by token, the token checked in the same statement (see
    /// `acknowledge(_:forTokenHash:thenFetch:after:now:groups:)`). No row: no such unexpired token.
    /// $1 the acknowledged ids, $2 the token's hash, $3 now, $4 after, $5 the page size + 1, $6 groups.
    struct MailboxByTokenStatement: PostgresPreparedStatement {
        static let name = "parley_mailbox_by_token_v1"
        static let sql = """
            WITH owner AS MATERIALIZED (SELECT address, device_id FROM tokens WHERE hash = $2 AND expires_at > $3),
            no_wait AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true) WHERE cardinality($1::bigint[]) > 0),
            deleted AS (
              DELETE FROM messages m USING owner WHERE m.address = owner.address AND m.device_id = owner.device_id AND m.id = ANY($1::bigint[])
                AND EXISTS (SELECT 1 FROM no_wait) RETURNING m.group_message),
            counts AS (
              SELECT count(*) FILTER (WHERE o.kind = 'ec') AS ec, count(*) FILTER (WHERE o.kind = 'pq') AS pq FROM one_time_prekeys o, owner
              WHERE o.address = owner.address AND o.device_id = owner.device_id)
            SELECT owner.address, owner.device_id, counts.ec, counts.pq, (SELECT count(*) FROM deleted),
              (SELECT array_agg(group_message) FROM deleted WHERE group_message IS NOT NULL),
              page.id, page.envelope, page.received_at, page.group_id, page.epoch, page.is_commit, page.body
            FROM owner CROSS JOIN counts LEFT JOIN LATERAL (
              SELECT m.id, m.envelope, m.received_at, g.group_id, g.epoch, g.is_commit, g.body
              FROM messages m LEFT JOIN group_messages g ON g.id = m.group_message
              WHERE m.address = owner.address AND m.device_id = owner.device_id AND m.id > $4 AND m.expires_at > $3
                AND NOT (m.id = ANY($1::bigint[])) AND ($6 OR m.group_message IS NULL)
              ORDER BY m.id LIMIT $5) AS page ON true
            ORDER BY page.id
            """
        typealias Row = (String, Int64, Int64, Int64, Int64, [Int64]?, Int64?, ByteBuffer?, Int64?, ByteBuffer?, Int64?, Bool?, ByteBuffer?)
        let ids: [Int64]
        let tokenHash: ByteBuffer
        let now: Int64
        let after: Int64
        let count: Int64
        let groups: Bool

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 6)
            try bindings.append(ids)
            try bindings.append(tokenHash)
            try bindings.append(now)
            try bindings.append(after)
            try bindings.append(count)
            try bindings.append(groups)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }
}

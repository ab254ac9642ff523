import NIOCore
import Switchboard
import Testing

@testable import SwitchboardRooms

@Suite("The connection registry: rooms per client with headroom, addresses, leases")
struct ConnectionRegistryTests {
    @Test("A client that created many rooms cannot take the last tenth of the table; one that created few can")
    func headroom() {
        let registry = ConnectionRegistry(limits: .init(maxRooms: 20, roomsPerClient: 100))
        let greedy = ClientID.address("203.0.113.7")
        for n in 0..<18 { #expect(registry.enter("g\(n)", client: greedy) == nil) }
        #expect(registry.enter("g18", client: greedy) == .clientQuota(18), "2 places left: kept for others")
        #expect(registry.enter("g0", client: greedy) == nil, "joining an existing room is not creating one")
        #expect(registry.enter("alice-1", client: .user("alice")) == nil)
        #expect(registry.enter("alice-2", client: .user("alice")) == nil)
        #expect(registry.enter("bob-1", client: .user("bob")) == .nodeFull)
        registry.leave("g5")
        #expect(registry.enter("bob-1", client: .user("bob")) == nil, "a vacated room frees its place")
    }

    @Test("A room is charged to its creator until it empties, whoever is in it meanwhile")
    func chargedToCreator() {
        let registry = ConnectionRegistry(limits: .init(roomsPerClient: 1))
        #expect(registry.enter("a", client: .user("alice")) == nil)
        #expect(registry.enter("a", client: .user("bob")) == nil)
        #expect(registry.enter("b", client: .user("alice")) == .clientQuota(1))
        registry.leave("a")  // alice's socket leaves; bob is still in it
        #expect(registry.enter("b", client: .user("alice")) == .clientQuota(1))
        registry.leave("a")
        #expect(registry.enter("b", client: .user("alice")) == nil)
    }

    @Test("Loopback peers are exempt from the per-address counts unless told otherwise")
    func loopback() throws {
        let exempt = ConnectionRegistry()
        for address in ["127.0.0.1", "127.3.2.1", "::1"] {
            #expect(exempt.address(of: try SocketAddress(ipAddress: address, port: 1)) == nil, "\(address)")
        }
        #expect(exempt.address(of: try SocketAddress(ipAddress: "203.0.113.7", port: 1)) == "203.0.113.7")
        #expect(exempt.address(of: try SocketAddress(ipAddress: "2001:db8::1", port: 1)) == "2001:db8::1")
        let limited = ConnectionRegistry(limits: .init(limitsLoopback: true))
        #expect(limited.address(of: try SocketAddress(ipAddress: "127.0.0.1", port: 1)) == "127.0.0.1")
    }

    @Test("A lease whose handshake never became a socket gives its places back when it goes")
    func leaseWithoutSocket() throws {
        let registry = ConnectionRegistry(limits: .init(connectionsPerUser: 1, socketsPerAddress: 1))
        let peer = try SocketAddress(ipAddress: "203.0.113.7", port: 1)
        var lease = try ClientLease.take(registry, peer: peer, user: "alice", now: 0)
        #expect(lease != nil && registry.addressCount == 1 && registry.userCount == 1)
        #expect(throws: HTTPError.self) { try ClientLease.take(registry, peer: peer, user: nil, now: 0) }
        let other = try SocketAddress(ipAddress: "203.0.113.8", port: 1)
        #expect(throws: HTTPError.self) { try ClientLease.take(registry, peer: other, user: "alice", now: 0) }
        #expect(registry.addressCount == 1, "a refused lease leaves nothing counted")
        lease = nil
        #expect(registry.addressCount == 0 && registry.userCount == 0)
        _ = lease
    }
}

// SPDX-License-Identifier: MIT
// A token that is unsafe to buy, for the executor's token-safety test: it takes a tax on every transfer that does
// not involve its owner (so buying from a pool delivers less than quoted), and with `sellBlocked` no account
// without code but the owner can move it at all (a honeypot: you can buy, never sell). The owner can still
// provide pool liquidity, as a scammer would.
pragma solidity ^0.8.20;

contract TrapToken {
    string public name = "Trap";
    string public symbol = "TRAP";
    uint8 public decimals = 18;
    uint256 public totalSupply;
    address public owner;
    uint256 public taxBps;
    bool public sellBlocked;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    constructor(uint256 supply, uint256 taxBps_, bool sellBlocked_) {
        owner = msg.sender;
        taxBps = taxBps_;
        sellBlocked = sellBlocked_;
        totalSupply = supply;
        balanceOf[msg.sender] = supply;
        emit Transfer(address(0), msg.sender, supply);
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        _move(msg.sender, to, amount);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        require(allowed >= amount, "allowance");
        if (allowed != type(uint256).max) {
            allowance[from][msg.sender] = allowed - amount;
        }
        _move(from, to, amount);
        return true;
    }

    function _move(address from, address to, uint256 amount) internal {
        require(!(sellBlocked && from != owner && to != owner && from.code.length == 0), "trap: holders cannot move");
        require(balanceOf[from] >= amount, "balance");
        balanceOf[from] -= amount;
        uint256 tax = (from == owner || to == owner) ? 0 : (amount * taxBps) / 10000;
        balanceOf[to] += amount - tax;
        totalSupply -= tax;
        emit Transfer(from, to, amount - tax);
        if (tax > 0) {
            emit Transfer(from, address(0), tax);
        }
    }
}
